%% A gen_server whose state record holds a #limits{} record; #limits{} gains a
%% field in v2 (the outer #state{} keeps its shape) and v2 reads it. Nothing
%% converts the state (no code_change/3): the server survives the purge (it waits
%% in gen_server's loop) and its next call runs v2 on the v1-shaped #limits{}:
%% badrecord, the server dies, the caller exits.
-module(hl_record_in_state).
-behaviour(gen_server).

-export([scenario/0, bump/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(limits, {max = 10}).
-record(state, {limits = #limits{}, count = 0}).

scenario() ->
    {ok, S} = gen_server:start(?MODULE, [], []),
    [{proc, "handle_call/3", S},
     {call, "bump/1", {?MODULE, bump, [S]}}].

bump(Server) ->
    gen_server:call(Server, bump, 1000).

init([]) ->
    {ok, #state{}}.

handle_call(bump, _From, S = #state{limits = L, count = C}) ->
    N = min(C + 1, L#limits.max),
    {reply, N, S#state{count = N}}.

handle_cast(_Msg, S) ->
    {noreply, S}.

handle_info({beaminspect_probe, From, Ref}, S) ->
    From ! {Ref, version()},
    {noreply, S};
handle_info(_Msg, S) ->
    {noreply, S}.

version() -> v1.
