%% v2 is the same source compiled again: same code, same MD5.
-module(hl_no_change_recompile).

-export([scenario/0, start/0, loop/1, scale/1, factor/0]).

scenario() ->
    [{proc, "loop/1", start()},
     {'fun', "scale/1", scale(3), [5]},
     {'fun', "factor/0", fun ?MODULE:factor/0},
     {call, "factor/0", {?MODULE, factor, []}}].

start() ->
    spawn(?MODULE, loop, [0]).

loop(N) ->
    receive
        {beaminspect_probe, From, Ref} ->
            From ! {Ref, same},
            ?MODULE:loop(N + 1);
        _ ->
            ?MODULE:loop(N + 1)
    end.

scale(K) ->
    fun(X) -> K * factor() * X end.

factor() ->
    10.
