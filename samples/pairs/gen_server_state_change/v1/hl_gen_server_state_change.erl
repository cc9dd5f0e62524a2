%% A gen_server whose state record gains a field in v2, without code_change/3.
%% The process itself waits in gen_server's loop, so the purge spares it, but
%% the next callback runs v2 on a v1-shaped state.
-module(hl_gen_server_state_change).
-behaviour(gen_server).

-export([scenario/0, start/0, bump/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(state, {count = 0}).

scenario() ->
    {ok, Plain} = start(),
    {ok, Updated} = start(),
    [{proc, "handle_call/3", Plain},
     {proc, "handle_call/3", Updated, #{upgrade => sys}},
     {call, "bump/1", {?MODULE, bump, [Plain]}},
     {call, "bump/1", {?MODULE, bump, [Updated]}}].

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

version() -> v1.
