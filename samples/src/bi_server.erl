%% A gen_server with a hand-set version, a state record and code_change/3.
-module(bi_server).
-behaviour(gen_server).
-vsn("1.2.3").

-export([start_link/0, push/1, pop/0, size/0, stop/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2,
         terminate/2, code_change/3]).

-record(state, {items = [] :: [term()], pushes = 0 :: non_neg_integer()}).

start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

push(Item) -> gen_server:cast(?MODULE, {push, Item}).
pop() -> gen_server:call(?MODULE, pop).
size() -> gen_server:call(?MODULE, size).
stop() -> gen_server:stop(?MODULE).

init([]) ->
    process_flag(trap_exit, true),
    {ok, #state{}}.

handle_call(pop, _From, #state{items = []} = S) ->
    {reply, empty, S};
handle_call(pop, _From, #state{items = [H | T]} = S) ->
    {reply, {ok, H}, S#state{items = T}};
handle_call(size, _From, #state{items = Items} = S) ->
    {reply, length(Items), S};
handle_call(_Other, _From, S) ->
    {reply, {error, unknown_call}, S}.

handle_cast({push, Item}, #state{items = Items, pushes = N} = S) ->
    {noreply, S#state{items = [Item | Items], pushes = N + 1}}.

handle_info(_Msg, S) ->
    {noreply, S}.

terminate(_Reason, _S) ->
    ok.

code_change("1.2.2", {state, Items}, _Extra) ->
    {ok, #state{items = Items, pushes = length(Items)}};
code_change(_OldVsn, S, _Extra) ->
    {ok, S}.
