%% Unicode atoms and strings: non-latin1 atoms (AtU8), unicode string
%% literals, utf8 binaries.
-module(bi_unicode).

-export(['héllo'/0, greet/1, names/0, title/0, 'größe'/1, '日本'/0]).

'héllo'() ->
    'héllo'.

greet(Lang) ->
    case Lang of
        ja -> <<"こんにちは、世界"/utf8>>;
        fr -> <<"Bonjour, été"/utf8>>;
        el -> "Καλημέρα";
        _ -> <<"hello">>
    end.

names() ->
    ['héllo', 'ünïcödé', 'λ', '日本語', 'emoji_😀'].

title() ->
    unicode:characters_to_list(<<"日本語"/utf8>>).

'größe'(L) ->
    length(L).

'日本'() ->
    '日本'.
