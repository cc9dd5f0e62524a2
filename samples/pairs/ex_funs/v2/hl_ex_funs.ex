# Where anonymous functions go. v2 changes only version/0, so the MD5 changes and
# every fn the old code made raises BadFunctionError (badfun) after the purge if
# something still holds it: the one an Agent keeps in its state, the one put in
# :persistent_term. The fn handed to Enum.map/2 is called and dropped. v2.
defmodule HlExFuns do
  def scenario do
    {:ok, agent} = Agent.start(fn -> %{f: fn x -> x + 1 end} end)
    to_pt()
    [{:fun, 'scenario/0', held(agent), [1]},
     {:fun, 'to_pt/0', :persistent_term.get(:hl_ex_funs), [1]},
     {:call, 'mapper/1', {__MODULE__, :mapper, [[1, 2, 3]]}}]
  end

  def held(agent), do: Agent.get(agent, fn s -> s.f end)

  def mapper(l), do: Enum.map(l, fn x -> x * 2 end)

  def to_pt, do: :persistent_term.put(:hl_ex_funs, fn x -> x + 2 end)

  def version, do: :v2
end
