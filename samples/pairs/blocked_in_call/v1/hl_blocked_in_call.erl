%% Processes blocked in a non-tail call made from this module: the return
%% address points into the old instance, so the purge kills them even though
%% the function they wait in (receive_one/0 here, timer:sleep/1 or
%% gen_server:call/3 elsewhere) is unchanged. A tail call into another module
%% leaves no return address behind: that process survives.
-module(hl_blocked_in_call).

-export([scenario/0, wait/0, nap/0, nap_tail/0, ask/1, label/0]).

scenario() ->
    Silent = spawn(timer, sleep, [infinity]),
    Waiter = spawn(?MODULE, wait, []),
    %% One process, two frames in this module: waiting in receive_one/0, to return
    %% into wait/0.
    [{proc, "receive_one/0", Waiter},
     {proc, "wait/0", Waiter},
     {proc, "nap/0", spawn(?MODULE, nap, [])},
     {proc, "ask/1", spawn(?MODULE, ask, [Silent])},
     {proc, "nap_tail/0", spawn(?MODULE, nap_tail, [])}].

wait() ->
    R = receive_one(),
    handle(R).

receive_one() ->
    receive
        {job, X} -> X
    end.

handle(X) ->
    {done, X}.

nap() ->
    timer:sleep(infinity),
    woke.

nap_tail() ->
    timer:sleep(infinity).

ask(Server) ->
    Reply = gen_server:call(Server, question, infinity),
    {answer, Reply}.

label() -> "blocked".
