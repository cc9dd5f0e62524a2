%% A gen_server that handles a cast by sleeping: the server process sits in
%% timer:sleep/1 called (not tail-called) from handle_cast/2, so its stack holds a
%% return address into v1 and the purge kills it, although the process is a
%% long-running server and the code it waits in did not change.
-module(hl_gen_server_sleeps).
-behaviour(gen_server).

-export([scenario/0]).
-export([init/1, handle_call/3, handle_cast/2]).

scenario() ->
    {ok, S} = gen_server:start(?MODULE, [], []),
    ok = gen_server:cast(S, nap),
    [{proc, "handle_cast/2", S}].

init([]) ->
    {ok, 0}.

handle_call(count, _From, N) ->
    {reply, N, N}.

handle_cast(nap, N) ->
    timer:sleep(infinity),
    {noreply, woke(N)}.

woke(N) ->
    {version(), N + 1}.

version() -> v1.
