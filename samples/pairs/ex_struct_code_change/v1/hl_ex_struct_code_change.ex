# A GenServer whose state is its own struct; v2 adds a field, bumps @vsn and writes a
# code_change/3 that adds it. The server upgraded through sys:change_code/4 (what an
# appup {update, M, {advanced, []}} does) gets the field; the one only reloaded keeps
# the v1 struct and crashes on its next call (KeyError). v1.
defmodule HlExStructCodeChange do
  use GenServer
  @vsn "1"

  defstruct count: 0

  def scenario do
    {:ok, updated} = GenServer.start(__MODULE__, [])
    {:ok, plain} = GenServer.start(__MODULE__, [])
    [{:proc, 'handle_call/3', updated, %{upgrade: :sys}},
     {:proc, 'handle_call/3', plain},
     {:call, 'bump/1', {__MODULE__, :bump, [updated]}},
     {:call, 'bump/1', {__MODULE__, :bump, [plain]}}]
  end

  def bump(pid), do: GenServer.call(pid, :bump, 1000)

  @impl true
  def init(_), do: {:ok, %__MODULE__{}}

  @impl true
  def handle_call(:bump, _from, %__MODULE__{} = s) do
    c = s.count + 1
    {:reply, c, %{s | count: c}}
  end

  @impl true
  def handle_info({:beaminspect_probe, from, ref}, s) do
    send(from, {ref, :v1})
    {:noreply, s}
  end

end
