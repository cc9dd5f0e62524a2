%% An implementation of the bi_plugin behaviour.
-module(bi_plugin_upper).
-behaviour(bi_plugin).

-export([name/0, handle/2, describe/0]).

name() -> upper.

handle(Input, undefined) ->
    handle(Input, 0);
handle(Input, Count) when is_list(Input) ->
    {ok, string:uppercase(Input), Count + 1};
handle(Input, Count) when is_binary(Input) ->
    {ok, string:uppercase(Input), Count + 1};
handle(_Input, _Count) ->
    {error, not_text}.

describe() -> "uppercases text".
