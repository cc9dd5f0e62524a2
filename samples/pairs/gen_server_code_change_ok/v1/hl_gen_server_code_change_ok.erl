%% A gen_server upgraded properly: v2 bumps -vsn and its code_change/3 turns
%% the v1 state into the v2 record. code_change runs only when the process is
%% suspended and sys:change_code/4 is called (an appup `update`); a plain
%% load leaves the old state in place.
-module(hl_gen_server_code_change_ok).
-behaviour(gen_server).
-vsn("1").

-export([scenario/0, start/0, bump/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-record(state, {count = 0}).

scenario() ->
    {ok, Updated} = start(),
    {ok, Plain} = start(),
    [{proc, "handle_call/3", Updated, #{upgrade => sys}},
     {proc, "handle_call/3", Plain},
     {call, "bump/1", {?MODULE, bump, [Updated]}},
     {call, "bump/1", {?MODULE, bump, [Plain]}}].

start() ->
    gen_server:start(?MODULE, [], []).

bump(Server) ->
    gen_server:call(Server, bump, 1000).

init([]) ->
    {ok, #state{}}.

handle_call(bump, _From, S) ->
    C = S#state.count + 1,
    {reply, C, S#state{count = C}}.

handle_cast(_Msg, S) ->
    {noreply, S}.

handle_info({beaminspect_probe, From, Ref}, S) ->
    From ! {Ref, version()},
    {noreply, S};
handle_info(_Msg, S) ->
    {noreply, S}.

code_change(_OldVsn, S, _Extra) ->
    {ok, S}.

version() -> v1.
