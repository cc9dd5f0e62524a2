# A GenServer whose state is a plain map; the module's struct is a reading it builds
# per call and replies with, never kept. v2 adds a field to the struct: the server's
# state is untouched and its next call builds the new struct.
defmodule HlExStructOut do
  use GenServer

  defstruct value: 0, seq: 0

  def scenario do
    {:ok, pid} = GenServer.start(__MODULE__, [])
    [{:proc, 'handle_call/3', pid}, {:call, 'read/1', {__MODULE__, :read, [pid]}}]
  end

  def read(pid), do: GenServer.call(pid, :read, 1000)

  @impl true
  def init(_), do: {:ok, %{count: 0}}

  @impl true
  def handle_call(:read, _from, %{count: c} = s) do
    {:reply, %__MODULE__{value: c * 10, seq: c}, %{s | count: c + 1}}
  end

  @impl true
  def handle_info({:beaminspect_probe, from, ref}, s) do
    send(from, {ref, :v1})
    {:noreply, s}
  end
end
