%% A gen_server whose state is a counter record that does not change; the record
%% #reading{} it builds per call, replies with and sends away gains a field in v2.
%% No process keeps a #reading{}: the server's next callback runs v2 on a state of
%% the unchanged shape and builds the new #reading{}.
-module(hl_record_out_of_state).
-behaviour(gen_server).

-export([scenario/0, read/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(state, {count = 0}).
-record(reading, {value, seq, unit = celsius}).

scenario() ->
    {ok, S} = gen_server:start(?MODULE, [], []),
    ok = gen_server:cast(S, {report, self()}),
    [{proc, "handle_call/3", S},
     {call, "read/1", {?MODULE, read, [S]}}].

read(Server) ->
    gen_server:call(Server, read, 1000).

init([]) ->
    {ok, #state{}}.

handle_call(read, _From, S = #state{count = C}) ->
    {reply, reading(C), S#state{count = C + 1}}.

handle_cast({report, To}, S = #state{count = C}) ->
    To ! reading(C),
    {noreply, S}.

handle_info({beaminspect_probe, From, Ref}, S) ->
    From ! {Ref, version()},
    {noreply, S};
handle_info(_Msg, S) ->
    {noreply, S}.

reading(C) ->
    #reading{value = C * 10, seq = C, unit = kelvin}.

version() -> v2.
