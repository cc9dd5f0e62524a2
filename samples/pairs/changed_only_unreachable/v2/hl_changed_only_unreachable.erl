%% The only changed function, format/1, is reachable only from a loop closed
%% by local tail calls. The process keeps running old code (and would keep
%% calling the old format/1) until it re-enters through ?MODULE:loop/1, which
%% it does on an `upgrade` message. One process gets that message between the
%% load and the purge and survives running v2; the other only gets a probe,
%% stays in v1 and is killed.
-module(hl_changed_only_unreachable).

-export([scenario/0, start/0, loop/1]).

scenario() ->
    [{proc, "loop/1", start(), #{nudge => upgrade}},
     {proc, "loop/1", start()}].

start() ->
    spawn(?MODULE, loop, [0]).

loop(N) ->
    receive
        {beaminspect_probe, From, Ref} ->
            From ! {Ref, format(N)},
            loop(N + 1);
        upgrade ->
            ?MODULE:loop(N);
        _ ->
            loop(N)
    end.

format(N) ->
    {v2, integer_to_list(N)}.
