%% Types and specs: -type, -opaque, -export_type, -spec with guards and unions.
-module(bi_types).

-export([new/0, push/2, peek/1, to_list/1, depth/1]).
-export_type([stack/0, stack/1, item/0]).

-type item() :: atom() | integer() | {tag, binary()}.
-opaque stack(T) :: {non_neg_integer(), [T]}.
-type stack() :: stack(item()).
-type depth() :: non_neg_integer().

-spec new() -> stack().
new() -> {0, []}.

-spec push(T, stack(T)) -> stack(T) when T :: item().
push(X, {N, L}) -> {N + 1, [X | L]}.

-spec peek(stack(T)) -> {ok, T} | empty.
peek({_, [X | _]}) -> {ok, X};
peek({0, []}) -> empty.

-spec to_list(stack(T)) -> [T].
to_list({_, L}) -> L.

-spec depth(stack()) -> depth().
depth({N, _}) -> N.
