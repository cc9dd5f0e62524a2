%% Funs handed to spawn/1. Each runs a new process; nothing keeps the fun itself, so
%% no badfun can follow. What matters is where the process waits: the one spawned by
%% start_waiter/0 waits in wait/0 (a receive in this module) and the purge kills it;
%% the one spawned by start_sleeper/0 tail-calls timer:sleep/1, leaves this module's
%% code at once, and survives.
-module(hl_fun_spawned).

-export([scenario/0, start_waiter/0, start_sleeper/0]).

scenario() ->
    [{proc, "wait/0", start_waiter()},
     {proc, "-start_sleeper/0-fun-0-/0", start_sleeper()}].

start_waiter() ->
    spawn(fun() -> wait() end).

start_sleeper() ->
    spawn(fun() -> timer:sleep(infinity) end).

wait() ->
    receive
        stop -> version()
    end.

version() -> v1.
