# A receive loop that re-enters through __MODULE__.loop/1 (an external call). After v2
# is loaded, the next message it handles moves it to the new code, and the purge
# leaves it alone; a process that gets no message between the load and the purge still
# waits in the old code and is killed. v1.
defmodule HlExLoopReentered do
  def start, do: spawn(fn -> loop(%{}) end)

  def scenario do
    [{:proc, 'loop/1', start()}, {:proc, 'loop/1', start(), %{nudge: :none}}]
  end

  def loop(state) do
    receive do
      {:beaminspect_probe, from, ref} ->
        send(from, {ref, version()})
        __MODULE__.loop(state)

      {:put, k, v} ->
        __MODULE__.loop(Map.put(state, k, v))

      _other ->
        __MODULE__.loop(state)
    end
  end

  def version, do: :v1
end
