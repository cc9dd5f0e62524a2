%% A supervisor whose child specs change between versions. v2: children a and b (b added, c removed).
%% Two supervisors run v1: one upgraded through sys:change_code/4 (what an appup
%% {update, M, supervisor} does), one only reloaded.  The children are event
%% managers (gen_event's code, none of this module's), so the purge leaves them.
%% After the upgrade, supervisor:code_change/3 has merged the specs: b is listed but
%% not started, c still runs; the reloaded supervisor never re-read its specs.
-module(hl_supervisor_children).
-behaviour(supervisor).

-export([scenario/0, start/0, init/1]).

scenario() ->
    {ok, Updated} = start(),
    {ok, Plain} = start(),
    [{proc, "init/1", Updated, #{upgrade => sys, nudge => none}},
     {proc, "init/1", Plain, #{nudge => none}},
     {children, "init/1", Updated},
     {children, "init/1", Plain}].

start() ->
    {ok, Pid} = supervisor:start_link(?MODULE, []),
    unlink(Pid),
    {ok, Pid}.

init([]) ->
    {ok, {#{strategy => one_for_one, intensity => 1, period => 5},
          [#{id => a, start => {gen_event, start_link, []}},
           #{id => b, start => {gen_event, start_link, []}}]}}.
