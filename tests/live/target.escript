#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% A node for the live tests: it runs v1 of a scenario pair, and loads v2 and purges
%% when told, then says which of the scenario's processes are still alive.
%%
%% Usage: escript target.escript NAME COOKIE V1.beam V2.beam
%%
%% Output: one JSON object per line.  Input: one command per line:
%%   upgrade     load V2 over V1 and purge at once (code:purge/1), then report
%%   load_again  load V1 again without purging (old code stays), then "ok"
%%   patch       load V2 and purge (the node now runs other code than V1), then "ok"
%%   quit        halt
%% The node halts when its standard input closes.
-mode(interpret).

main([Name, Cookie, V1, V2]) ->
    {ok, _} = net_kernel:start([list_to_atom(Name), shortnames]),
    erlang:set_cookie(node(), list_to_atom(Cookie)),
    code:add_pathsz(filelib:wildcard("/usr/lib/elixir/lib/*/ebin")),
    {ok, Bin1} = file:read_file(V1),
    {ok, Bin2} = file:read_file(V2),
    M = list_to_atom(filename:basename(V1, ".beam")),
    {module, M} = code:load_binary(M, V1, Bin1),
    Items = M:scenario(),
    timer:sleep(300),
    Procs = [{L, P} || I <- Items, {proc, L, P} <- [proc(I)]],
    emit(["{\"ready\":true,\"node\":\"", atom_to_list(node()), "\",\"module\":\"",
          atom_to_list(M), "\",\"procs\":[",
          lists:join(",", [["{\"label\":\"", L, "\",\"pid\":\"", pid_to_list(P), "\"}"]
                           || {L, P} <- Procs]), "]}"]),
    loop(M, V1, Bin1, V2, Bin2, Procs).

proc({proc, L, P}) when is_pid(P) -> {proc, L, P};
proc({proc, L, P, _}) when is_pid(P) -> {proc, L, P};
proc(_) -> none.

loop(M, V1, Bin1, V2, Bin2, Procs) ->
    case io:get_line("") of
        "upgrade\n" ->
            {module, M} = code:load_binary(M, V2, Bin2),
            Killed = code:purge(M),
            timer:sleep(100),
            emit(["{\"purge_killed\":", atom_to_list(Killed), ",\"procs\":[",
                  lists:join(",", [["{\"pid\":\"", pid_to_list(P), "\",\"alive\":",
                                    atom_to_list(is_process_alive(P)), "}"]
                                   || {_, P} <- Procs]), "]}"]),
            loop(M, V1, Bin1, V2, Bin2, Procs);
        "load_again\n" ->
            {module, M} = code:load_binary(M, V1, Bin1),
            emit("{\"ok\":true}"),
            loop(M, V1, Bin1, V2, Bin2, Procs);
        "patch\n" ->
            {module, M} = code:load_binary(M, V2, Bin2),
            code:purge(M),
            emit("{\"ok\":true}"),
            loop(M, V1, Bin1, V2, Bin2, Procs);
        _ ->
            halt(0)
    end.

emit(Iodata) ->
    io:put_chars([Iodata, $\n]).
