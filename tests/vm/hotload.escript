#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% Ground truth for hot code loading: what the running VM does when the
%% second version of a module is loaded over the first and the old code is
%% purged.
%%
%% Usage: escript tests/vm/hotload.escript V1.beam V2.beam
%%
%% V1 must export scenario/0, which starts whatever the scenario needs and
%% returns a list of observation items:
%%   {proc, Label, Pid}              a process running or looping in Label
%%   {proc, Label, Pid, Opts}        Opts: #{nudge => probe | none | Message,
%%                                          upgrade => load | sys,
%%                                          extra => Term}
%%   {fun, Label, Fun}               called with as many 0 arguments as needed
%%   {fun, Label, Fun, Args}
%%   {call, Label, {M, F, Args}}     an external call tried after the purge
%%   {children, Label, SupPid}       a supervisor's children after the purge: which
%%                                   ids it lists, and whether each one runs
%% Label is "name/arity" of the function a static analysis would name.
%%
%% Steps: load V1 (code:load_binary), call scenario/0, wait, suspend the
%% `upgrade => sys` processes, load V2 (V1 becomes old), run
%% sys:change_code/4 and resume, send each process its nudge (by default a
%% probe message), purge if old code exists, then observe processes, funs and
%% calls.
%%
%% A probe is {beaminspect_probe, From, Ref}; a process that wants to say
%% which code it runs answers {Ref, Reply} (Reply is usually the atom v1 or v2
%% returned by a local call).
%%
%% Output: one JSON object per line on stdout, in this order:
%%   {"kind":"load","version":"v1","result":"ok"}
%%   {"kind":"load","version":"v2","result":"ok"|"error","reason":...}
%%   {"kind":"md5","old":HEX,"new":HEX,"same":BOOL,"current":HEX}
%%       old: v1 as loaded; new: the V2 file (beam_lib:md5/1); current: the
%%       current instance after the load attempt
%%   {"kind":"vsn","old":TEXT,"current":TEXT}   (vsn attribute, ~0p)
%%   {"kind":"purge","old_code":BOOL,"result":"killed"|"none"|"not_needed"}
%%   then one "proc", "fun", "call" or "children" object per scenario item, in order;
%%   "children": {"status":"ok","children":[{"id":TEXT,"running":BOOL}...]}
%% Exit status: 0 when observed, 2 on a harness failure, 3 on the watchdog
%% timeout, 64 on bad usage.

%% Interpreted: half the start-up time of compiling this file on every run,
%% and nothing here is hot enough to need compiled code.
-mode(interpret).

-define(WATCHDOG_MS, 20000).
-define(SETTLE_MS, 60).
-define(STEP_MS, 30).
-define(PROBE_MS, 120).

main([V1, V2]) ->
    watchdog(?WATCHDOG_MS),
    process_flag(trap_exit, true),
    logs_to_stderr(),
    try run(V1, V2) of
        ok -> halt(0)
    catch
        throw:{harness, Reason} ->
            fail(Reason, []);
        Class:Reason:Stack ->
            fail({Class, Reason}, Stack)
    end;
main(_) ->
    io:put_chars(standard_error,
                 "usage: escript hotload.escript V1.beam V2.beam\n"),
    halt(64).

fail(Reason, Stack) ->
    io:format(standard_error, "hotload: harness failure: ~tp~n~tp~n",
              [Reason, Stack]),
    halt(2).

%% Crash and warning reports go to stderr; stdout carries only JSON lines.
logs_to_stderr() ->
    _ = logger:remove_handler(default),
    ok = logger:add_handler(default, logger_std_h,
                            #{config => #{type => standard_error}}).

watchdog(Ms) ->
    spawn(fun() ->
                  receive after Ms ->
                          io:format(standard_error,
                                    "hotload: watchdog: no result after ~b ms~n",
                                    [Ms]),
                          halt(3)
                  end
          end).

%% --- the run ------------------------------------------------------------

%% Elixir modules under test need Elixir's own applications on the code path: the
%% release's Elixir, when it is installed beside this OTP.
elixir_paths() ->
    code:add_pathsz(filelib:wildcard("/usr/lib/elixir/lib/*/ebin")).

run(V1File, V2File) ->
    elixir_paths(),
    {M, Bin1} = read_beam(V1File),
    {M2, Bin2} = read_beam(V2File),
    M =:= M2 orelse throw({harness, {module_names_differ, M, M2}}),
    code:is_loaded(M) =:= false
        orelse throw({harness, {already_loaded, M}}),
    case code:load_binary(M, V1File, Bin1) of
        {module, M} -> ok;
        Error1 -> throw({harness, {v1_not_loaded, Error1}})
    end,
    emit([{kind, <<"load">>}, {version, <<"v1">>}, {result, <<"ok">>}]),
    OldMd5 = M:module_info(md5),
    OldVsn = vsn_of(M),
    erlang:function_exported(M, scenario, 0)
        orelse throw({harness, {no_scenario_export, M}}),
    Items0 = [check_item(I) || I <- M:scenario()],
    timer:sleep(?SETTLE_MS),
    Items1 = [before(I) || I <- Items0],
    [sys:suspend(Pid) || #{kind := proc, upgrade := sys, pid := Pid,
                           alive_at_load := true} <- Items1],
    LoadResult = code:load_binary(M, V2File, Bin2),
    emit([{kind, <<"load">>}, {version, <<"v2">>} | load_result(M, LoadResult)]),
    {ok, {M, FileMd5}} = beam_lib:md5(Bin2),
    CurrentMd5 = M:module_info(md5),
    emit([{kind, <<"md5">>}, {old, hex(OldMd5)}, {new, hex(FileMd5)},
          {same, OldMd5 =:= FileMd5}, {current, hex(CurrentMd5)}]),
    emit([{kind, <<"vsn">>}, {old, text(OldVsn)}, {current, text(vsn_of(M))}]),
    Items2 = [after_load(I, M, OldVsn) || I <- Items1],
    Items3 = nudge(Items2),
    timer:sleep(?STEP_MS),
    Items4 = [before_purge(I, M) || I <- Items3],
    OldCode = erlang:check_old_code(M),
    PurgeResult = case OldCode of
                      true ->
                          case code:purge(M) of
                              true -> <<"killed">>;
                              false -> <<"none">>
                          end;
                      false ->
                          <<"not_needed">>
                  end,
    emit([{kind, <<"purge">>}, {old_code, OldCode}, {result, PurgeResult}]),
    timer:sleep(?STEP_MS),
    Items5 = [after_purge(I) || I <- Items4],
    Items6 = probe_after(Items5),
    Items7 = [try_after(I) || I <- Items6],
    timer:sleep(?STEP_MS),
    [emit(report(final(I))) || I <- Items7],
    ok.

read_beam(File) ->
    case file:read_file(File) of
        {ok, Bin} ->
            case beam_lib:info(Bin) of
                Info when is_list(Info) ->
                    {module, M} = lists:keyfind(module, 1, Info),
                    {M, Bin};
                {error, beam_lib, Reason} ->
                    throw({harness, {not_a_beam, File, Reason}})
            end;
        {error, Reason} ->
            throw({harness, {cannot_read, File, Reason}})
    end.

%% The old version as release_handler passes it to code_change: a -vsn
%% string as is, the single term of a -vsn(Term) or of the default MD5 vsn.
vsn_of(M) ->
    case lists:keyfind(vsn, 1, M:module_info(attributes)) of
        {vsn, Vsn} ->
            case io_lib:printable_unicode_list(Vsn) of
                true -> Vsn;
                false when is_list(Vsn), length(Vsn) =:= 1 -> hd(Vsn);
                false -> Vsn
            end;
        false ->
            undefined
    end.

load_result(M, {module, M}) ->
    [{result, <<"ok">>}];
load_result(_M, {error, Reason}) ->
    [{result, <<"error">>}, {reason, text(Reason)}];
load_result(_M, Other) ->
    [{result, <<"error">>}, {reason, text(Other)}].

%% --- items --------------------------------------------------------------

check_item({proc, Label, Pid}) ->
    check_item({proc, Label, Pid, #{}});
check_item({proc, Label, Pid, Opts}) when is_pid(Pid), is_map(Opts) ->
    #{kind => proc, label => label(Label), pid => Pid,
      nudge => maps:get(nudge, Opts, probe),
      upgrade => maps:get(upgrade, Opts, load),
      extra => maps:get(extra, Opts, []),
      monitor => erlang:monitor(process, Pid)};
check_item({'fun', Label, Fun}) when is_function(Fun) ->
    {arity, Arity} = erlang:fun_info(Fun, arity),
    check_item({'fun', Label, Fun, lists:duplicate(Arity, 0)});
check_item({'fun', Label, Fun, Args}) when is_function(Fun, length(Args)) ->
    #{kind => 'fun', label => label(Label), 'fun' => Fun, args => Args};
check_item({call, Label, {M, F, Args}}) when is_atom(M), is_atom(F),
                                             is_list(Args) ->
    #{kind => call, label => label(Label), mfa => {M, F, Args}};
check_item({children, Label, Pid}) when is_pid(Pid) ->
    #{kind => children, label => label(Label), pid => Pid};
check_item(Other) ->
    throw({harness, {bad_scenario_item, Other}}).

label(L) when is_list(L) -> unicode:characters_to_binary(L);
label(L) when is_binary(L) -> L;
label(L) when is_atom(L) -> atom_to_binary(L, utf8).

before(#{kind := proc, pid := Pid} = I) ->
    I#{alive_at_load => is_process_alive(Pid)};
before(#{kind := 'fun', 'fun' := F, args := Args} = I) ->
    I#{before => attempt(fun() -> apply(F, Args) end)};
before(#{kind := call, mfa := {M, F, Args}} = I) ->
    I#{before => attempt(fun() -> apply(M, F, Args) end)};
before(#{kind := children} = I) ->
    I.

after_load(#{kind := proc, pid := Pid} = I, M, OldVsn) ->
    I1 = I#{old_code_after_load => old_code(Pid, M)},
    case I of
        #{upgrade := sys, alive_at_load := true, extra := Extra} ->
            Result = attempt(fun() -> sys:change_code(Pid, M, OldVsn, Extra) end),
            attempt(fun() -> sys:resume(Pid) end),
            I1#{change_code => Result};
        _ ->
            I1
    end;
after_load(I, _M, _OldVsn) ->
    I.

%% Send every live process its nudge, then collect the probe answers.
nudge(Items) ->
    Sent = [send_nudge(I) || I <- Items],
    collect(Sent, reply_before_purge).

send_nudge(#{kind := proc, pid := Pid, nudge := probe} = I) ->
    Ref = make_ref(),
    Pid ! {beaminspect_probe, self(), Ref},
    I#{probe => Ref};
send_nudge(#{kind := proc, nudge := none} = I) ->
    I;
send_nudge(#{kind := proc, pid := Pid, nudge := Msg} = I) ->
    Pid ! Msg,
    I;
send_nudge(I) ->
    I.

probe_after(Items) ->
    Sent = [case I of
                #{kind := proc, alive_after_purge := true, pid := Pid} ->
                    Ref = make_ref(),
                    Pid ! {beaminspect_probe, self(), Ref},
                    I#{probe => Ref};
                _ ->
                    I
            end || I <- Items],
    collect(Sent, reply_after_purge).

collect(Items, Key) ->
    Deadline = erlang:monotonic_time(millisecond) + ?PROBE_MS,
    [case maps:take(probe, I) of
         {Ref, I1} -> I1#{Key => wait_reply(Ref, Deadline)};
         error -> I
     end || I <- Items].

wait_reply(Ref, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Ref, Reply} -> {reply, Reply}
    after Left ->
        no_reply
    end.

before_purge(#{kind := proc, pid := Pid} = I, M) ->
    I#{old_code_before_purge => old_code(Pid, M)};
before_purge(I, _M) ->
    I.

after_purge(#{kind := proc, pid := Pid, monitor := Mon} = I) ->
    case is_process_alive(Pid) of
        true -> I#{alive_after_purge => true};
        false -> I#{alive_after_purge => false, exit => down_reason(Mon)}
    end;
after_purge(I) ->
    I.

try_after(#{kind := 'fun', 'fun' := F, args := Args} = I) ->
    I#{result => attempt(fun() -> apply(F, Args) end)};
try_after(#{kind := call, mfa := {M, F, Args}} = I) ->
    I#{result => attempt(fun() -> apply(M, F, Args) end)};
try_after(#{kind := children, pid := Pid} = I) ->
    I#{result => attempt(fun() ->
                                 [{Id, is_pid(C)} ||
                                     {Id, C, _, _} <- supervisor:which_children(Pid)]
                         end)};
try_after(I) ->
    I.

final(#{kind := proc, pid := Pid, monitor := Mon} = I) ->
    case is_process_alive(Pid) of
        true -> I#{final => alive};
        false ->
            case I of
                #{exit := Reason} -> I#{final => {dead, Reason}};
                _ -> I#{final => {dead, down_reason(Mon)}}
            end
    end;
final(I) ->
    I.

old_code(Pid, M) ->
    case is_process_alive(Pid) of
        true -> erlang:check_process_code(Pid, M);
        false -> dead
    end.

down_reason(Mon) ->
    receive
        {'DOWN', Mon, process, _, Reason} -> Reason
    after 200 ->
        unknown
    end.

attempt(F) ->
    try F() of
        Value -> {ok, Value}
    catch
        Class:Reason -> {Class, Reason}
    end.

%% --- reports ------------------------------------------------------------

report(#{kind := proc} = I) ->
    [{kind, <<"proc">>}, {label, maps:get(label, I)},
     {pid, text(maps:get(pid, I))},
     {nudge, nudge_text(maps:get(nudge, I))},
     {upgrade, atom_to_binary(maps:get(upgrade, I), utf8)},
     {alive_at_load, maps:get(alive_at_load, I)},
     {old_code_after_load, maps:get(old_code_after_load, I)}]
    ++ [{change_code, change_code_outcome(R)} || #{change_code := R} <- [I]]
    ++ [{reply_before_purge, reply(maps:get(reply_before_purge, I, none))},
        {old_code_before_purge, maps:get(old_code_before_purge, I)},
        {alive_after_purge, maps:get(alive_after_purge, I)},
        {killed, maps:get(exit, I, none) =:= killed},
        {exit, case I of
                   #{exit := Reason} -> text(Reason);
                   _ -> null
               end},
        {reply_after_purge, reply(maps:get(reply_after_purge, I, none))},
        {final, case maps:get(final, I) of
                    alive -> <<"alive">>;
                    {dead, R} -> tag(R)
                end},
        {final_exit, case maps:get(final, I) of
                         alive -> null;
                         {dead, R} -> text(R)
                     end}];
report(#{kind := 'fun', 'fun' := F} = I) ->
    [{kind, <<"fun">>}, {label, maps:get(label, I)},
     {fun_info, fun_info(F)},
     {before, outcome(maps:get(before, I))},
     {result, outcome(maps:get(result, I))}];
report(#{kind := call, mfa := {M, F, Args}} = I) ->
    [{kind, <<"call">>}, {label, maps:get(label, I)},
     {mfa, text({M, F, length(Args)})},
     {before, outcome(maps:get(before, I))},
     {result, outcome(maps:get(result, I))}];
report(#{kind := children} = I) ->
    [{kind, <<"children">>}, {label, maps:get(label, I)}
     | case maps:get(result, I) of
           {ok, Children} ->
               [{status, <<"ok">>},
                {children, [{obj, [{id, text(Id)}, {running, Running}]}
                            || {Id, Running} <- lists:sort(Children)]}];
           Other ->
               [{status, proplists:get_value(status, element(2, outcome(Other)))}, {children, []}]
       end].

nudge_text(probe) -> <<"probe">>;
nudge_text(none) -> <<"none">>;
nudge_text(Msg) -> text(Msg).

reply({reply, R}) -> text(R);
reply(_) -> null.

fun_info(F) ->
    Keys = [type, module, name, arity, env, index, new_index, uniq, new_uniq],
    Info = [case erlang:fun_info(F, K) of
                {env, Env} -> {env_size, length(Env)};
                {new_uniq, U} when is_binary(U) -> {new_uniq, hex(U)};
                {K, V} when is_atom(V) -> {K, atom_to_binary(V, utf8)};
                {K, V} when is_integer(V) -> {K, V};
                {K, V} -> {K, text(V)}
            end || K <- Keys],
    {obj, Info}.

%% sys:change_code/4 returns ok or {error, Reason}.
change_code_outcome({ok, ok}) ->
    {obj, [{status, <<"ok">>}, {value, <<"ok">>}]};
change_code_outcome({ok, {error, Reason}}) ->
    {obj, [{status, <<"error:", (tag(Reason))/binary>>}, {reason, text(Reason)}]};
change_code_outcome(Other) ->
    outcome(Other).

%% {"status": "ok"|"badfun"|"undef"|Class:Tag, "value"|"reason": text}
outcome({ok, Value}) ->
    {obj, [{status, <<"ok">>}, {value, text(Value)}]};
outcome({error, {badfun, _}} = E) ->
    {obj, [{status, <<"badfun">>}, {reason, text(element(2, E))}]};
outcome({error, undef}) ->
    {obj, [{status, <<"undef">>}, {reason, <<"undef">>}]};
outcome({Class, Reason}) ->
    {obj, [{status, <<(atom_to_binary(Class, utf8))/binary, ":",
                      (tag(Reason))/binary>>},
           {reason, text(Reason)}]}.

%% The leading atom of an exit reason: killed, badrecord, undef, ...
tag(R) when is_atom(R) -> atom_to_binary(R, utf8);
tag({'EXIT', R}) -> tag(R);
tag({R, _}) when is_tuple(R) -> tag(R);
tag(R) when is_tuple(R), tuple_size(R) > 0, is_atom(element(1, R)) ->
    atom_to_binary(element(1, R), utf8);
tag(_) -> <<"other">>.

text(Term) ->
    unicode:characters_to_binary(io_lib:format("~0tp", [Term])).

hex(Bin) ->
    << <<(hexdigit(N))>> || <<N:4>> <= Bin >>.

hexdigit(N) when N < 10 -> $0 + N;
hexdigit(N) -> $a + N - 10.

%% --- JSON (objects, strings, numbers, booleans, null) -------------------

emit(Pairs) ->
    io:put_chars([json({obj, Pairs}), $\n]).

json({obj, Pairs}) ->
    [${, lists:join($,, [[json_string(atom_to_binary(K, utf8)), $:, json(V)]
                         || {K, V} <- Pairs]), $}];
json(true) -> <<"true">>;
json(false) -> <<"false">>;
json(null) -> <<"null">>;
json(A) when is_atom(A) -> json_string(atom_to_binary(A, utf8));
json(N) when is_integer(N) -> integer_to_binary(N);
json(B) when is_binary(B) -> json_string(B);
json(L) when is_list(L) -> [$[, lists:join($,, [json(V) || V <- L]), $]].

%% Pure ASCII output: everything outside printable ASCII is \u-escaped.
json_string(Bin) ->
    [$", [json_char(C) || C <- unicode:characters_to_list(Bin)], $"].

json_char($") -> "\\\"";
json_char($\\) -> "\\\\";
json_char(C) when C >= 16#20, C < 16#7f -> C;
json_char(C) when C > 16#ffff ->
    C1 = C - 16#10000,
    [json_u(16#d800 bor (C1 bsr 10)), json_u(16#dc00 bor (C1 band 16#3ff))];
json_char(C) -> json_u(C).

json_u(C) ->
    io_lib:format("\\u~4.16.0b", [C]).
