%% Control flow: receive loops with `after`, selective receive, try/catch/after,
%% catch expressions, raising and rethrowing.
-module(bi_flow).

-export([start/0, stop/1, ask/2, collect/2, safe_div/2, with_cleanup/1,
         classify/1, rethrow/1]).

start() ->
    spawn(fun() -> loop(#{}) end).

stop(Pid) ->
    Pid ! stop,
    ok.

ask(Pid, Key) ->
    Ref = make_ref(),
    Pid ! {get, self(), Ref, Key},
    receive
        {Ref, Value} -> {ok, Value}
    after 1000 ->
        timeout
    end.

loop(State) ->
    receive
        {put, Key, Value} ->
            loop(State#{Key => Value});
        {get, From, Ref, Key} ->
            From ! {Ref, maps:get(Key, State, undefined)},
            loop(State);
        stop ->
            ok
    after 60000 ->
        loop(State)
    end.

collect(0, Acc) ->
    lists:reverse(Acc);
collect(N, Acc) ->
    receive
        {item, X} -> collect(N - 1, [X | Acc])
    after 100 ->
        lists:reverse(Acc)
    end.

safe_div(A, B) ->
    try A / B of
        Q when Q > 1000 -> {big, Q};
        Q -> {ok, Q}
    catch
        error:badarith -> {error, division_by_zero};
        error:Reason:Stack -> {error, Reason, hd(Stack)}
    end.

with_cleanup(F) ->
    Tab = ets:new(scratch, []),
    try
        F(Tab)
    after
        ets:delete(Tab)
    end.

classify(X) ->
    case catch check(X) of
        {'EXIT', _} -> crashed;
        thrown -> thrown;
        Other -> {value, Other}
    end.

check(X) when X < 0 -> throw(thrown);
check(0) -> erlang:error(zero);
check(X) -> X.

rethrow(F) ->
    try F()
    catch
        Class:Reason:Stack ->
            erlang:raise(Class, {wrapped, Reason}, Stack)
    end.
