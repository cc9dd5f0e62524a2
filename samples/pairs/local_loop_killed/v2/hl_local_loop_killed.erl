%% A process in a receive loop closed by a local tail call. v2 only changes
%% an unrelated function, yet the purge kills the process: its program
%% counter stays in the old instance.
-module(hl_local_loop_killed).

-export([start/0, scenario/0, describe/0]).

start() ->
    spawn(fun() -> loop(0) end).

scenario() ->
    [{proc, "loop/1", start()}].

loop(N) ->
    receive
        {beaminspect_probe, From, Ref} ->
            From ! {Ref, version()},
            loop(N + 1);
        {add, K} ->
            loop(N + K);
        _Other ->
            loop(N)
    end.

version() -> v1.

describe() -> "a counting loop".
