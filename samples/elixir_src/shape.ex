defmodule BeamInspect.Sample.Shape do
  @moduledoc "A struct, a protocol-free dispatch on it, and guards."
  defstruct kind: :square, size: 1.0

  @type t :: %__MODULE__{kind: :square | :circle, size: float()}

  @spec area(t()) :: float()
  def area(%__MODULE__{kind: :square, size: s}), do: s * s
  def area(%__MODULE__{kind: :circle, size: r}), do: :math.pi() * r * r

  def scale(%__MODULE__{} = shape, factor) when is_number(factor) and factor > 0 do
    %{shape | size: shape.size * factor}
  end

  def describe(shapes) do
    for %__MODULE__{kind: k} = s <- shapes, into: %{} do
      {k, area(s)}
    end
  end
end
