defmodule BeamInspect.Sample.Counter do
  @moduledoc "A GenServer counting named events."
  use GenServer

  def start_link(opts \\ []), do: GenServer.start_link(__MODULE__, %{}, opts)
  def bump(server, key), do: GenServer.cast(server, {:bump, key})
  def get(server, key), do: GenServer.call(server, {:get, key})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_cast({:bump, key}, state), do: {:noreply, Map.update(state, key, 1, &(&1 + 1))}

  @impl true
  def handle_call({:get, key}, _from, state), do: {:reply, Map.get(state, key, 0), state}
end
