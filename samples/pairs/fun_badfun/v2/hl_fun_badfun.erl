%% Local funs created by v1: one without free variables, one with a free
%% variable, and one held by another process. v2 changes only an unrelated
%% function; after the purge every fun created by v1 raises badfun. Holding a
%% fun does not get a process killed; a holder that gets no message before the
%% purge is killed for waiting in v1's hold/1.
-module(hl_fun_badfun).

-export([scenario/0, constant/0, adder/1, hold/1, units/0]).

scenario() ->
    Held = adder(10),
    Holder = spawn(?MODULE, hold, [Held]),
    Idle = spawn(?MODULE, hold, [Held]),
    [{'fun', "constant/0", constant()},
     {'fun', "adder/1", adder(1), [41]},
     {'fun', "hold/1", Held, [5]},
     {proc, "hold/1", Holder},
     %% Gets no message between the load and the purge: still in v1's hold/1.
     {proc, "hold/1", Idle, #{nudge => none}}].

constant() ->
    fun() -> 42 end.

adder(N) ->
    fun(X) -> X + N end.

hold(F) ->
    receive
        {beaminspect_probe, From, Ref} ->
            From ! {Ref, version()},
            ?MODULE:hold(F);
        {apply, From, Arg} ->
            From ! {result, F(Arg)},
            ?MODULE:hold(F)
    end.

version() -> v2.

units() -> [mm, cm, m, km].
