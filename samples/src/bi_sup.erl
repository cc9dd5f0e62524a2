%% A supervisor with map child specs for the server and the state machine.
-module(bi_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Flags = #{strategy => one_for_one, intensity => 5, period => 10},
    Children = [#{id => bi_server,
                  start => {bi_server, start_link, []},
                  restart => permanent,
                  shutdown => 5000,
                  type => worker,
                  modules => [bi_server]},
                #{id => bi_statem,
                  start => {bi_statem, start_link, [[1, 2, 3]]},
                  restart => transient,
                  type => worker}],
    {ok, {Flags, Children}}.
