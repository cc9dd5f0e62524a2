%% v2's -on_load function does not return ok: the load fails with
%% on_load_failure, v1 stays current, nothing becomes old, nothing is purged.
-module(hl_on_load_fails).
-on_load(init/0).

-export([scenario/0, start/0, marker/0]).

init() ->
    {error, refused}.

scenario() ->
    [{proc, "loop/0", start()},
     {'fun', "scenario/0", fun() -> marker() end},
     {call, "marker/0", {?MODULE, marker, []}}].

start() ->
    spawn(fun loop/0).

loop() ->
    receive
        {beaminspect_probe, From, Ref} ->
            From ! {Ref, version()},
            loop();
        _ ->
            loop()
    end.

marker() ->
    version().

version() -> v2.
