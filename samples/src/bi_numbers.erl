%% Numbers: floats (literal and computed), negative integers, bignums as
%% literals (stored in the literal table) and computed at run time.
-module(bi_numbers).

-export([constants/0, area/1, factorial/1, big_literal/0, neg_big_literal/0,
         mixed/0, to_celsius/1]).

constants() ->
    {3.141592653589793, 2.718281828459045, -0.5, 1.0e-300, 6.02214076e23,
     -2147483648, 576460752303423487, -576460752303423488}.

area({circle, R}) -> math:pi() * R * R;
area({rect, W, H}) -> W * H * 1.0.

factorial(0) -> 1;
factorial(N) when N > 0 -> N * factorial(N - 1).

big_literal() ->
    123456789012345678901234567890123456789012345678901234567890.

neg_big_literal() ->
    -98765432109876543210987654321098765432109876543210.

mixed() ->
    [1 bsl 64, (1 bsl 100) - 1, factorial(30), 0.1 + 0.2, float(1 bsl 70)].

to_celsius(F) when is_number(F) ->
    (F - 32) * 5 / 9.
