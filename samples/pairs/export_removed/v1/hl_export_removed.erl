%% v2 drops the export of old_api/0 and turns api/1 into api/2: external
%% calls to the v1 signatures raise undef once v2 is current.
-module(hl_export_removed).

-export([scenario/0, api/1, old_api/0, stable/0]).

scenario() ->
    [{call, "old_api/0", {?MODULE, old_api, []}},
     {call, "api/1", {?MODULE, api, [7]}},
     {call, "stable/0", {?MODULE, stable, []}}].

api(X) ->
    {ok, X}.

old_api() ->
    api(0).

stable() ->
    yes.
