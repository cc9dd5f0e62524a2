# A GenServer taking casts; v2 drops handle_cast/2, so use GenServer's default
# (which raises) answers the casts old callers still send.
defmodule HlExCastRemoved do
  use GenServer

  def scenario do
    {:ok, pid} = GenServer.start(__MODULE__, 0)
    [{:proc, 'handle_call/3', pid},
     {:call, 'add_then_get/2', {__MODULE__, :add_then_get, [pid, 2]}}]
  end

  def add_then_get(pid, n) do
    GenServer.cast(pid, {:add, n})
    GenServer.call(pid, :get, 10_000)
  end

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_call(:get, _from, n), do: {:reply, n, n}

  @impl true
  def handle_cast({:add, k}, n), do: {:noreply, n + k}

  @impl true
  def handle_info({:beaminspect_probe, from, ref}, n) do
    send(from, {ref, :v1})
    {:noreply, n}
  end
end
