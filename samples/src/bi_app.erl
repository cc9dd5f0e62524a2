%% An application callback module.
-module(bi_app).
-behaviour(application).

-export([start/2, prep_stop/1, stop/1, config_change/3]).

start(normal, _Args) ->
    bi_sup:start_link();
start({takeover, _Node}, Args) ->
    start(normal, Args);
start({failover, _Node}, Args) ->
    start(normal, Args).

prep_stop(State) ->
    State.

stop(_State) ->
    ok.

config_change(Changed, New, Removed) ->
    logger:info("config changed: ~p ~p ~p", [Changed, New, Removed]),
    ok.
