%% A gen_statem (state functions) modelling a door with a code lock.
-module(bi_statem).
-behaviour(gen_statem).

-export([start_link/1, button/1, stop/0]).
-export([callback_mode/0, init/1, locked/3, open/3, terminate/3, code_change/4]).

start_link(Code) ->
    gen_statem:start_link({local, ?MODULE}, ?MODULE, Code, []).

button(Digit) -> gen_statem:cast(?MODULE, {button, Digit}).
stop() -> gen_statem:stop(?MODULE).

callback_mode() -> state_functions.

init(Code) ->
    {ok, locked, #{code => Code, typed => []}}.

locked(cast, {button, Digit}, #{code := Code, typed := Typed} = Data) ->
    case [Digit | Typed] of
        Typed1 when length(Typed1) =:= length(Code) ->
            case lists:reverse(Typed1) of
                Code -> {next_state, open, Data#{typed := []},
                         [{state_timeout, 10000, lock}]};
                _ -> {keep_state, Data#{typed := []}}
            end;
        Typed1 ->
            {keep_state, Data#{typed := Typed1}}
    end;
locked(EventType, Event, Data) ->
    common(EventType, Event, Data).

open(state_timeout, lock, Data) ->
    {next_state, locked, Data};
open(cast, {button, _}, _Data) ->
    {keep_state_and_data, [postpone]};
open(EventType, Event, Data) ->
    common(EventType, Event, Data).

common({call, From}, state, _Data) ->
    {keep_state_and_data, [{reply, From, current}]};
common(_, _, _) ->
    keep_state_and_data.

terminate(_Reason, _State, _Data) -> ok.

code_change(_OldVsn, State, Data, _Extra) -> {ok, State, Data}.
