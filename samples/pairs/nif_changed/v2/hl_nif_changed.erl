%% A NIF stub module. The library does not exist: erlang:load_nif/2 returns
%% an error, which the on_load function tolerates, so the Erlang stubs stay
%% in place and raise nif_not_loaded. v2 declares one more NIF.
-module(hl_nif_changed).
-on_load(init/0).
-nifs([checksum/1, checksum/2]).

-export([scenario/0, checksum/1, checksum/2, load_result/0]).

-define(KEY, {?MODULE, load_nif}).

init() ->
    Result = erlang:load_nif("./no_such_dir/hl_nif_changed", 2),
    persistent_term:put(?KEY, element(1, Result)),
    ok.

scenario() ->
    [{call, "checksum/1", {?MODULE, checksum, [<<"abc">>]}},
     {call, "load_result/0", {?MODULE, load_result, []}}].

load_result() ->
    persistent_term:get(?KEY, none).

checksum(_Bin) ->
    erlang:nif_error(nif_not_loaded).

checksum(_Bin, _Seed) ->
    erlang:nif_error(nif_not_loaded).
