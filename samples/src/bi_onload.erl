%% A module with -on_load: its init function runs when the module is loaded
%% and must return ok for the new code to become current.
-module(bi_onload).
-on_load(init/0).

-export([loaded_at/0, table/0]).

-define(KEY, {?MODULE, loaded_at}).

init() ->
    persistent_term:put(?KEY, erlang:monotonic_time()),
    ok.

loaded_at() ->
    persistent_term:get(?KEY, undefined).

table() ->
    [{K, V} || {{?MODULE, _} = K, V} <- persistent_term:get()].
