%% Which calls block, read from the code they reach rather than from a list of
%% names. sys:get_state/2 is in no table: it blocks because it reaches
%% gen:do_call/4, which receives with the caller's timeout; the process that
%% asks a silent process for its state from peek/1 has a return address into
%% this module and the purge kills it. The gen_server's handle_call/3 prints,
%% logs, reads a file's info and sets a timer in non-tail calls: each of those
%% waits, if at all, for a server of the runtime that answers at once, so its
%% process is idle in gen_server's loop at the purge and survives. starter/0
%% waits in gen_server:start/3 (proc_lib's receive, until init/1 returns) for a
%% server whose init/1 never returns: killed; that server itself tail-called
%% timer:sleep/1 from init/1 and keeps no frame in this module.
-module(hl_blocked_derived).
-behaviour(gen_server).

-export([scenario/0, peek/1, starter/0, init/1, handle_call/3, handle_cast/2, label/0]).

scenario() ->
    Silent = spawn(timer, sleep, [infinity]),
    {ok, Server} = gen_server:start(?MODULE, [], []),
    done = gen_server:call(Server, work),
    [{proc, "peek/1", spawn(?MODULE, peek, [Silent])},
     {proc, "handle_call/3", Server},
     {proc, "starter/0", spawn(?MODULE, starter, [])}].

peek(Pid) ->
    State = sys:get_state(Pid, infinity),
    {state, State}.

starter() ->
    {ok, Pid} = gen_server:start(?MODULE, slow, []),
    {started, Pid}.

init(slow) ->
    timer:sleep(infinity);
init([]) ->
    {ok, 0}.

handle_call(work, _From, N) ->
    io:format(standard_error, "", []),
    logger:debug("working ~p", [N]),
    {ok, _} = file:read_file_info("/"),
    {ok, _} = timer:send_after(600000, self(), tick),
    {reply, done, N + 1};
handle_call(_, _From, N) ->
    {reply, N, N}.

handle_cast(_, N) ->
    {noreply, N}.

label() -> "derived".
