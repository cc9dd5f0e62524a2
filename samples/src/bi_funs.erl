%% Funs: local funs without and with free variables, nested funs, funs as
%% arguments, named funs, and external funs (fun M:F/A).
-module(bi_funs).

-export([constant/0, adder/1, compose/2, apply_all/1, mappers/0,
         counter_fun/0, fact_fun/0, sort_desc/1]).

constant() ->
    fun() -> 42 end.

adder(N) ->
    fun(X) -> X + N end.

compose(F, G) ->
    fun(X) -> F(G(X)) end.

apply_all(Xs) ->
    Fs = [adder(1), fun double/1, fun erlang:abs/1, fun lists:max/1],
    [catch F(Xs) || F <- Fs].

mappers() ->
    {fun lists:map/2, fun lists:foldl/3, fun ?MODULE:sort_desc/1}.

counter_fun() ->
    Start = erlang:unique_integer([positive]),
    fun(Step) ->
        Next = Start + Step,
        {Next, fun() -> Next * 2 end}
    end.

fact_fun() ->
    fun Fact(0) -> 1;
        Fact(N) -> N * Fact(N - 1)
    end.

sort_desc(L) ->
    lists:sort(fun(A, B) -> A >= B end, L).

double(X) -> 2 * X.
