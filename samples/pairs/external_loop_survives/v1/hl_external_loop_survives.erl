%% A receive loop that re-enters through a fully qualified call
%% (?MODULE:loop/1). After v2 is loaded, the next message it handles moves it
%% to the new instance, and the purge leaves it alone. A process that gets no
%% message between the load and the purge is still waiting in the old
%% instance and is killed.
-module(hl_external_loop_survives).

-export([start/0, loop/1, scenario/0]).

start() ->
    spawn(fun() -> loop(#{}) end).

scenario() ->
    [{proc, "loop/1", start()},
     {proc, "loop/1", start(), #{nudge => none}}].

loop(State) ->
    receive
        {beaminspect_probe, From, Ref} ->
            From ! {Ref, version()},
            ?MODULE:loop(State);
        {put, K, V} ->
            ?MODULE:loop(State#{K => V});
        _Other ->
            ?MODULE:loop(State)
    end.

version() -> v1.
