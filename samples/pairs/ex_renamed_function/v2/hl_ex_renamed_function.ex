# A public function renamed (greet/1 in v1, hello/1 in v2): a caller that still calls
# greet/1 after the upgrade gets undef (UndefinedFunctionError). v2.
defmodule HlExRenamedFunction do
  def scenario do
    [{:call, 'greet/1', {__MODULE__, :greet, ["x"]}}]
  end

  def hello(name), do: "hi " <> name
end
