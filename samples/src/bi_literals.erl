%% Large and nested constant terms: one literal table entry each.
-module(bi_literals).

-export([primes/0, table/0, config/0, tree/0, strings/0, nested_lookup/2]).

primes() ->
    [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67,
     71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149,
     151, 157, 163, 167, 173, 179, 181, 191, 193, 197, 199, 211, 223, 227, 229,
     233, 239, 241, 251, 257, 263, 269, 271, 277, 281, 283, 293, 307, 311, 313].

table() ->
    {{1, one, "one", <<"one">>}, {2, two, "two", <<"two">>},
     {3, three, "three", <<"three">>}, {4, four, "four", <<"four">>},
     {5, five, "five", <<"five">>}, {6, six, "six", <<"six">>},
     {7, seven, "seven", <<"seven">>}, {8, eight, "eight", <<"eight">>}}.

config() ->
    #{name => <<"beaminspect">>,
      limits => #{max_chunks => 64, max_atoms => 1048576, ratio => 0.75},
      servers => [{"alpha", 4000, [tls, {verify, peer}]},
                  {"beta", 4001, []},
                  {"gamma", 4002, [{backoff, [100, 200, 400, 800]}]}],
      tags => {a, {b, {c, {d, {e, []}}}}}}.

tree() ->
    {node, 8,
     {node, 4, {node, 2, {leaf, 1}, {leaf, 3}}, {node, 6, {leaf, 5}, {leaf, 7}}},
     {node, 12, {node, 10, {leaf, 9}, {leaf, 11}}, {node, 14, {leaf, 13}, {leaf, 15}}}}.

strings() ->
    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
     "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho",
     "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"].

nested_lookup(Path, Map) ->
    lists:foldl(fun(K, #{} = M) -> maps:get(K, M, undefined);
                   (_, Other) -> Other
                end, Map, Path).
