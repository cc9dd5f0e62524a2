%% v2 changes the state record and brings a code_change/3 that converts it,
%% but keeps the hand-set -vsn("1"): code_change/3 receives "1" as the old
%% version, the same as the version being installed, so the old and new
%% module cannot be told apart by their vsn (a later downgrade or a guard on
%% the version goes wrong). The VM itself does not care.
-module(hl_vsn_not_bumped).
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
