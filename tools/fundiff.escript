#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% OTP's own function-by-function diff of two trees of beams, with beam_disasm: the
%% oracle of the changed-function test and the anchor of make bench's two-trees row.
%%
%% Usage: escript fundiff.escript OLD_DIR NEW_DIR
%%
%% Modules are paired by file name (every */ebin/*.beam, or *.beam directly in the
%% directory); for each pair whose files differ, both are disassembled and each
%% function's code compared after normalising what a recompilation moves without
%% changing what runs: line instructions dropped, labels numbered within the function,
%% a label of another function named by that function, a fun by its function (not its
%% index or checksum), and the type annotations of typed registers dropped.
%%
%% Output, one line per module pair that differs in any function:
%%   MODULE<TAB>changed f/1,g/2<TAB>added h/0<TAB>removed k/3
%% (an empty list is written as -), or MODULE<TAB>error REASON when beam_disasm fails.
-mode(compile).

main([Old, New]) ->
    OldFiles = beams(Old),
    NewFiles = beams(New),
    lists:foreach(fun({Name, OldPath}) ->
                          case lists:keyfind(Name, 1, NewFiles) of
                              {Name, NewPath} -> compare(Name, OldPath, NewPath);
                              false -> ok
                          end
                  end, OldFiles),
    halt(0);
main(_) ->
    io:format(standard_error, "usage: fundiff.escript OLD_DIR NEW_DIR~n", []),
    halt(2).

beams(Dir) ->
    Paths = filelib:wildcard(filename:join([Dir, "*", "ebin", "*.beam"]))
        ++ filelib:wildcard(filename:join(Dir, "*.beam")),
    lists:ukeysort(1, [{filename:basename(P, ".beam"), P} || P <- Paths]).

compare(Name, OldPath, NewPath) ->
    {ok, A} = file:read_file(OldPath),
    {ok, B} = file:read_file(NewPath),
    case A =:= B of
        true -> ok;
        false ->
            try {functions(A), functions(B)} of
                {Fa, Fb} -> report(Name, Fa, Fb)
            catch
                C:R -> io:format("~s\terror ~0p~n", [Name, {C, R}])
            end
    end.

report(Name, Fa, Fb) ->
    Changed = [K || {K, Code} <- Fa, lists:keyfind(K, 1, Fb) =/= false,
                    element(2, lists:keyfind(K, 1, Fb)) =/= Code],
    Removed = [K || {K, _} <- Fa, lists:keyfind(K, 1, Fb) =:= false],
    Added = [K || {K, _} <- Fb, lists:keyfind(K, 1, Fa) =:= false],
    case Changed ++ Removed ++ Added of
        [] -> ok;
        _ -> io:format("~s\tchanged ~s\tadded ~s\tremoved ~s~n",
                       [Name, mfas(Changed), mfas(Added), mfas(Removed)])
    end.

mfas([]) -> "-";
mfas(L) -> lists:join(",", [io_lib:format("~ts/~w", [atom_to_list(F), A])
                            || {F, A} <- lists:sort(L)]).

%% [{{Name, Arity}, NormalisedCode}] of a beam.
functions(Bin) ->
    {beam_file, _M, _Exp, _Attr, _CInf, Fs} = beam_disasm:file(Bin),
    Entries = maps:from_list([{E, {N, A}} || {function, N, A, E, _} <- Fs]),
    [{{N, A}, normalise(Code, Entries)} || {function, N, A, _E, Code} <- Fs].

normalise(Code, Entries) ->
    Body = [I || I <- Code, not is_line(I)],
    Own = [L || {label, L} <- Body],
    Local = maps:from_list(lists:zip(Own, lists:seq(1, length(Own)))),
    [norm(I, Local, Entries) || I <- Body].

is_line({line, _}) -> true;
is_line(_) -> false.

norm({make_fun3, Fun, _Index, _Uniq, Dst, Env}, L, E) ->
    {make_fun3, norm(Fun, L, E), norm(Dst, L, E), norm(Env, L, E)};
norm({make_fun2, Fun, _Index, _Uniq, NumFree}, L, E) ->
    {make_fun2, norm(Fun, L, E), NumFree};
norm({tr, Reg, _Type}, _L, _E) ->
    Reg;
norm({f, N}, L, E) when is_integer(N), N > 0 ->
    case L of
        #{N := Local} -> {f, Local};
        _ ->
            case E of
                #{N := Fa} -> {fn, Fa};
                _ -> {f, N}
            end
    end;
norm({label, N}, L, _E) when is_integer(N) ->
    {label, maps:get(N, L)};
norm({literal, _} = Lit, _L, _E) ->
    Lit;
norm(T, L, E) when is_tuple(T) ->
    list_to_tuple([norm(X, L, E) || X <- tuple_to_list(T)]);
norm(Xs, L, E) when is_list(Xs) ->
    [norm(X, L, E) || X <- Xs];
norm(X, _L, _E) ->
    X.
