defmodule BeamInspect.Sample.Greeter do
  @moduledoc """
  Greets people in a few languages. Carries module and function docs
  (the Docs chunk) and typespecs.
  """

  @typedoc "A language code."
  @type lang :: :en | :fr | :ja

  @greetings %{en: "Hello", fr: "Bonjour", ja: "こんにちは"}

  @doc "Returns a greeting for `name` in `lang`."
  @spec greet(String.t(), lang()) :: String.t()
  def greet(name, lang \\ :en) do
    "#{Map.fetch!(@greetings, lang)}, #{name}!"
  end

  @doc false
  def languages, do: Map.keys(@greetings)

  defp unused_private(x), do: x
  def _keep(x), do: unused_private(x)
end
