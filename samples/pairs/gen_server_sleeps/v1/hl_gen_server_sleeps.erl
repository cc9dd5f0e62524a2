%% A gen_server that handles a cast by sleeping: the server process sits in
%% timer:sleep/1 called (not tail-called) from handle_cast/2, so its stack holds a
%% return address into v1 and the purge kills it, although the process is a
%% long-running server and the code it waits in did not change. A client blocked in
%% ask/1's gen_server:call/3 (started from outside the module, here through
%% erlang:apply/3) returns into v1 as well and is killed too.
-module(hl_gen_server_sleeps).
-behaviour(gen_server).

-export([scenario/0, ask/1]).
-export([init/1, handle_call/3, handle_cast/2]).

scenario() ->
    {ok, S} = gen_server:start(?MODULE, [], []),
    ok = gen_server:cast(S, nap),
    Silent = spawn(timer, sleep, [infinity]),
    Client = spawn(erlang, apply, [?MODULE, ask, [Silent]]),
    [{proc, "handle_cast/2", S},
     {proc, "ask/1", Client}].

%% An API function for clients: the caller waits for the server's answer.
ask(Server) ->
    Reply = gen_server:call(Server, question, infinity),
    {answer, Reply}.

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
