%% External funs (fun M:F/A) name a function, not a piece of code: they run
%% the current instance and survive the purge of the one that created them.
-module(hl_external_fun_ok).

-export([scenario/0, double/1, doubler/0, reverser/0]).

scenario() ->
    [{'fun', "doubler/0", doubler(), [21]},
     {'fun', "reverser/0", reverser(), [[1, 2, 3]]}].

doubler() ->
    fun ?MODULE:double/1.

reverser() ->
    fun lists:reverse/1.

double(X) ->
    {v2, 2 * X}.
