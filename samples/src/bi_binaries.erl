%% Binaries and bit syntax: string segments (StrT), sub-byte bitstrings,
%% little-endian and signed segments, utf8 segments, binary comprehensions.
-module(bi_binaries).

-export([header/1, parse_header/1, flags/3, unflags/1, greeting/0,
         encode_len/1, decode_len/1, hexify/1, is_magic/1]).

header(Len) ->
    <<"BEAMINSP", 1:8, Len:32/big, 0:16>>.

parse_header(<<"BEAMINSP", Version:8, Len:32/big, _:16, Rest/binary>>) ->
    {ok, Version, Len, Rest};
parse_header(_) ->
    {error, bad_header}.

%% Three bits: a bitstring that is not a binary.
flags(A, B, C) ->
    X = (A bsl 2) bor (B bsl 1) bor C,
    <<X:3>>.

unflags(<<A:1, B:1, C:1>>) ->
    {A, B, C}.

greeting() ->
    <<"日本語"/utf8, " and "/utf8, "héllo"/utf8>>.

encode_len(N) when N < 128 ->
    <<0:1, N:7>>;
encode_len(N) ->
    <<1:1, N:31/little-unsigned>>.

decode_len(<<0:1, N:7, Rest/bits>>) -> {N, Rest};
decode_len(<<1:1, N:31/little-unsigned, Rest/bits>>) -> {N, Rest}.

hexify(Bin) ->
    << <<(hex(H)), (hex(L))>> || <<H:4, L:4>> <= Bin >>.

hex(N) when N < 10 -> $0 + N;
hex(N) -> $a + N - 10.

is_magic(<<16#CAFEBABE:32, _/binary>>) -> true;
is_magic(<<-1:16/signed, _/binary>>) -> minus_one;
is_magic(_) -> false.
