%% A library module: no processes, no funs handed out. v2 changes a function
%% body; callers simply get the new result.
-module(hl_pure_library_change).

-export([scenario/0, slug/1, clamp/3]).

scenario() ->
    [{call, "slug/1", {?MODULE, slug, ["Hello World"]}},
     {call, "clamp/3", {?MODULE, clamp, [15, 0, 10]}}].

slug(Text) ->
    lists:flatten(string:replace(string:lowercase(Text), " ", "_", all)).

clamp(X, Lo, Hi) ->
    max(Lo, min(X, Hi)).
