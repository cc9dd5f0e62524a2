# v2: the struct gains :total, read by handle_call; the running process still holds a
# v1 struct, so its next call raises KeyError.
defmodule HlExStructState do
  use GenServer

  defstruct count: 0, total: 0

  def scenario do
    {:ok, pid} = GenServer.start(__MODULE__, [])
    [{:proc, 'handle_call/3', pid}, {:call, 'bump/1', {__MODULE__, :bump, [pid]}}]
  end

  def bump(pid), do: GenServer.call(pid, :bump, 1000)

  @impl true
  def init(_), do: {:ok, %__MODULE__{}}

  @impl true
  def handle_call(:bump, _from, %__MODULE__{} = s) do
    c = s.count + 1
    {:reply, c, %{s | count: c, total: s.total + 1}}
  end

  @impl true
  def handle_info({:beaminspect_probe, from, ref}, s) do
    send(from, {ref, :v2})
    {:noreply, s}
  end
end
