%% A fun sent in a message. The receiver (a process that runs only OTP code, so the
%% purge leaves it alone) keeps the message unread; once v1 is purged, the fun it
%% holds raises badfun when called. The fun handed to lists:foldl/3 by total/1 is
%% called and dropped: total/1 keeps working.
-module(hl_fun_in_message).

-export([scenario/0, offer/1, total/1, version/0]).

scenario() ->
    Keeper = spawn(timer, sleep, [infinity]),
    offer(Keeper),
    {messages, [{keep, F}]} = erlang:process_info(Keeper, messages),
    [{'fun', "offer/1", F, [1]},
     {call, "total/1", {?MODULE, total, [[1, 2, 3]]}}].

offer(Pid) ->
    Pid ! {keep, fun(X) -> X * 10 end},
    ok.

total(L) ->
    lists:foldl(fun(X, Acc) -> X + Acc end, 0, L).

version() -> v2.
