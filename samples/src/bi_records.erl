%% Records and maps: record creation, update and matching, small maps,
%% and a map literal with more than 32 keys (stored as a hash map).
-module(bi_records).

-export([new_user/2, rename/2, is_admin/1, settings/0, lookup/2,
         merge_defaults/1, count_keys/1]).

-record(user, {id :: integer(), name = <<>> :: binary(), roles = [] :: [atom()],
               meta = #{} :: map()}).

new_user(Id, Name) ->
    #user{id = Id, name = Name, meta = #{created => erlang:system_time(second)}}.

rename(#user{} = U, Name) ->
    U#user{name = Name}.

is_admin(#user{roles = Roles}) ->
    lists:member(admin, Roles).

%% 40 keys: the compiler keeps this as one literal, a hash-array-mapped trie.
settings() ->
    #{k01 => 1, k02 => 2, k03 => 3, k04 => 4, k05 => 5, k06 => 6, k07 => 7,
      k08 => 8, k09 => 9, k10 => 10, k11 => 11, k12 => 12, k13 => 13,
      k14 => 14, k15 => 15, k16 => 16, k17 => 17, k18 => 18, k19 => 19,
      k20 => 20, k21 => 21, k22 => 22, k23 => 23, k24 => 24, k25 => 25,
      k26 => 26, k27 => 27, k28 => 28, k29 => 29, k30 => 30, k31 => 31,
      k32 => 32, k33 => 33, k34 => 34, k35 => 35, k36 => 36, k37 => 37,
      k38 => 38, k39 => 39, k40 => 40}.

lookup(Key, Map) when is_map(Map) ->
    case Map of
        #{Key := Value} -> {ok, Value};
        #{} -> error
    end.

merge_defaults(Opts) ->
    Defaults = #{timeout => 5000, retries => 3, mode => passive},
    maps:merge(Defaults, Opts#{checked => true}).

count_keys(#{} = M) ->
    map_size(M).
