%% Where funs go. v2 changes only version/0, so the MD5 changes and every fun
%% the old code made raises badfun after the purge -- if anything still holds
%% it. Funs kept in ETS, in persistent_term and in a gen_server's state are held
%% and break, as does one a gen_server call replies with (the caller keeps it);
%% a fun handed to lists:map/2 is called and dropped; a fun given to
%% spawn/1 runs a process (which the purge question is about, not badfun).
-module(hl_fun_classes).
-behaviour(gen_server).

-export([scenario/0, mapper/1, to_ets/1, to_pt/0, state_fun/1, reply_fun/1, version/0]).
-export([init/1, handle_call/3, handle_cast/2]).

scenario() ->
    T = ets:new(hl_fun_classes_tab, [public]),
    to_ets(T),
    to_pt(),
    [{f, EtsFun}] = ets:lookup(T, f),
    {ok, S} = gen_server:start(?MODULE, [], []),
    [{'fun', "to_ets/1", EtsFun, [1]},
     {'fun', "to_pt/0", persistent_term:get(hl_fun_classes), [1]},
     {'fun', "init/1", state_fun(S), [1]},
     {'fun', "handle_call/3", reply_fun(S), [1]},
     {call, "mapper/1", {?MODULE, mapper, [[1, 2, 3]]}}].

mapper(L) ->
    lists:map(fun(X) -> X * 2 end, L).

to_ets(T) ->
    ets:insert(T, {f, fun(X) -> X + 1 end}).

to_pt() ->
    persistent_term:put(hl_fun_classes, fun(X) -> X + 2 end).

state_fun(S) ->
    gen_server:call(S, get_fun).

reply_fun(S) ->
    gen_server:call(S, make_fun).

init([]) ->
    {ok, #{f => fun(X) -> X + 3 end}}.

handle_call(get_fun, _From, State = #{f := F}) ->
    {reply, F, State};
handle_call(make_fun, _From, State) ->
    {reply, fun(X) -> X + 4 end, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.

version() -> v1.
