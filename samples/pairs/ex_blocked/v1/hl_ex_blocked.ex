# Processes blocked in non-tail calls made from this module: a Task's job in
# Process.sleep/1 and a GenServer whose handle_cast/2 waits in GenServer.call/3.
# Their return addresses point into the old code: the purge kills them. v1.
defmodule HlExBlocked do
  use GenServer

  def scenario do
    silent = spawn(fn -> Process.sleep(:infinity) end)
    {:ok, task} = Task.start(__MODULE__, :job, [])
    {:ok, server} = GenServer.start(__MODULE__, silent)
    GenServer.cast(server, :ask)
    [{:proc, 'job/0', task}, {:proc, 'handle_cast/2', server}]
  end

  def job do
    Process.sleep(:infinity)
    :done
  end

  @impl true
  def init(other), do: {:ok, other}

  @impl true
  def handle_cast(:ask, other) do
    reply = GenServer.call(other, :question, :infinity)
    {:noreply, {other, reply}}
  end

  def version, do: :v1
end
