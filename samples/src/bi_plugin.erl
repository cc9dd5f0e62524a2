%% A behaviour of our own: callbacks, an optional callback, and a runner.
-module(bi_plugin).

-export([run/2, describe/1]).

-callback name() -> atom().
-callback handle(Input :: term(), State :: term()) ->
    {ok, Output :: term(), NewState :: term()} | {error, Reason :: term()}.
-callback describe() -> unicode:chardata().
-optional_callbacks([describe/0]).

run(Module, Inputs) ->
    run(Module, Inputs, undefined, []).

run(_Module, [], _State, Acc) ->
    {ok, lists:reverse(Acc)};
run(Module, [In | Rest], State, Acc) ->
    case Module:handle(In, State) of
        {ok, Out, State1} -> run(Module, Rest, State1, [Out | Acc]);
        {error, _} = Error -> Error
    end.

describe(Module) ->
    case erlang:function_exported(Module, describe, 0) of
        true -> Module:describe();
        false -> atom_to_list(Module:name())
    end.
