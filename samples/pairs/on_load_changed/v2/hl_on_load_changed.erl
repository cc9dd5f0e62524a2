%% The -on_load function changes in v2. Loading v2 runs it; v2 becomes
%% current only because it returns ok.
-module(hl_on_load_changed).
-on_load(init/0).

-export([scenario/0, marker/0]).

-define(KEY, {?MODULE, marker}).

init() ->
    persistent_term:put(?KEY, {v2, initialised}),
    ok.

scenario() ->
    [{call, "marker/0", {?MODULE, marker, []}}].

marker() ->
    {persistent_term:get(?KEY, none), version()}.

version() -> v2.
