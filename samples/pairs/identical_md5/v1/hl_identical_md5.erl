%% v2 differs from v1 only in comments and blank lines: the Line chunk
%% changes, the module MD5 does not.
-module(hl_identical_md5).

-export([scenario/0, start/0, maker/1, total/1]).

scenario() ->
    [{proc, "loop/1", start()},
     {'fun', "maker/1", maker(3), [4]},
     {call, "total/1", {?MODULE, total, [[1, 2, 3]]}}].

start() ->
    spawn(fun() -> loop([]) end).

loop(Seen) ->
    receive
        {beaminspect_probe, From, Ref} ->
            From ! {Ref, v1},
            loop(Seen);
        Msg ->
            loop([Msg | Seen])
    end.

maker(K) ->
    fun(X) -> K * X end.

total(L) ->
    lists:sum(L).
