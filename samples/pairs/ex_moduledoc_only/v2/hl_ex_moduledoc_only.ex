# v2 changes only @moduledoc: the Docs chunk, not the code, so the MD5 is the same;
# the fn kept in :persistent_term stays valid and the GenServer keeps running.
defmodule HlExModuledocOnly do
  @moduledoc "Counts things, one at a time."
  use GenServer

  def scenario do
    :persistent_term.put(:hl_ex_moduledoc_only, fn x -> x + 1 end)
    {:ok, pid} = GenServer.start(__MODULE__, 0)
    [{:proc, 'handle_call/3', pid},
     {:fun, 'scenario/0', :persistent_term.get(:hl_ex_moduledoc_only), [1]},
     {:call, 'bump/1', {__MODULE__, :bump, [pid]}}]
  end

  def bump(pid), do: GenServer.call(pid, :bump, 1000)

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_call(:bump, _from, n), do: {:reply, n + 1, n + 1}

  @impl true
  def handle_info({:beaminspect_probe, from, ref}, n) do
    send(from, {ref, :same})
    {:noreply, n}
  end
end
