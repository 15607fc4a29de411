"""The default renderer: OpenGL 3.3 through moderngl on a headless EGL context.

Three passes per view: a shadow map from the sun; the shaded scene into a multisampled (anti-aliased) colour
buffer; and a data pass of eye depth and object id with one sample at each pixel centre, so masks stay
hard-edged and agree with depth. With no GPU, Mesa's llvmpipe rasterizes on the CPU; the output is a pure
function of the scene and camera there.
"""

from __future__ import annotations

import numpy as np

from mirdata.errors import MirdataError
from mirdata.generators.render import Renderer, RenderResult
from mirdata.generators.scene import PRIMITIVES, Camera, Scene, unit_mesh

SHADOW_SIZE = 1024
MATERIAL_SPECULAR = {"rubber": (0.06, 12.0), "metal": (0.55, 48.0)}  # strength, shininess

_VERTEX = """
#version 330
uniform mat4 model;
uniform mat3 normal_matrix;
uniform mat4 view;
uniform mat4 projection;
uniform mat4 light_matrix;
in vec3 in_position;
in vec3 in_normal;
out vec3 v_world;
out vec3 v_normal;
out vec4 v_light;
void main() {
    vec4 world = model * vec4(in_position, 1.0);
    v_world = world.xyz;
    v_normal = normal_matrix * in_normal;
    v_light = light_matrix * world;
    gl_Position = projection * view * world;
}
"""

_FRAGMENT = """
#version 330
uniform vec3 base_color;      // linear RGB
uniform float specular;
uniform float shininess;
uniform vec3 sun_direction;   // towards the sun
uniform vec3 sun_color;
uniform vec3 sky_light;
uniform vec3 ground_light;
uniform vec3 eye_position;
uniform float shadow_texel;
uniform float paving;         // 1 on the ground: square slabs of 1 m with darker joints, each slab its own shade
uniform sampler2DShadow shadow_map;
in vec3 v_world;
in vec3 v_normal;
in vec4 v_light;
layout(location = 0) out vec4 out_color;
void main() {
    vec3 n = normalize(v_normal);
    vec3 to_eye = normalize(eye_position - v_world);
    vec3 p = v_light.xyz / v_light.w * 0.5 + 0.5;
    float bias = max(0.004 * (1.0 - dot(n, sun_direction)), 0.0008);
    float lit = 1.0;
    if (all(greaterThan(p.xy, vec2(0.0))) && all(lessThan(p.xyz, vec3(1.0)))) {  // outside: no caster
        lit = 0.0;  // 4 bilinear comparisons: a 3x3-texel percentage-closer filter
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j)
                lit += texture(shadow_map, vec3(p.xy + (vec2(i, j) - 0.5) * shadow_texel, p.z - bias));
        lit *= 0.25;
    }
    float diffuse = max(dot(n, sun_direction), 0.0);
    vec3 half_vector = normalize(sun_direction + to_eye);
    float highlight = specular * pow(max(dot(n, half_vector), 0.0), shininess) * step(0.0, diffuse);
    vec3 ambient = mix(ground_light, sky_light, 0.5 + 0.5 * n.z);
    vec3 albedo = base_color;
    if (paving > 0.5) {
        vec2 slab = floor(v_world.xy);
        vec2 inside = fract(v_world.xy);
        albedo *= 0.9 + 0.16 * fract(sin(dot(slab, vec2(12.9898, 78.233))) * 43758.5453);
        vec2 blur = fwidth(v_world.xy);
        vec2 edge = min(inside, 1.0 - inside);
        vec2 joint = 1.0 - smoothstep(vec2(0.03), vec2(0.03) + blur, edge);
        float fade = clamp(1.5 - 2.0 * max(blur.x, blur.y), 0.0, 1.0);  // far away joints blur into the slabs
        albedo *= 1.0 - 0.4 * max(joint.x, joint.y) * fade;
    }
    vec3 color = albedo * (ambient + sun_color * diffuse * lit) + sun_color * highlight * lit;
    out_color = vec4(pow(clamp(color, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0);
}
"""

# The data pass: eye depth and object id per pixel, one sample each, so masks stay hard-edged.
_ID_VERTEX = """
#version 330
uniform mat4 model;
uniform mat4 view;
uniform mat4 projection;
in vec3 in_position;
out float v_depth;
void main() {
    vec4 eye = view * model * vec4(in_position, 1.0);
    v_depth = -eye.z;
    gl_Position = projection * eye;
}
"""

_ID_FRAGMENT = """
#version 330
uniform float object_id;
in float v_depth;
out vec2 out_depth_id;
void main() { out_depth_id = vec2(v_depth, object_id); }
"""

_SHADOW_VERTEX = """
#version 330
uniform mat4 model;
uniform mat4 light_matrix;
in vec3 in_position;
void main() { gl_Position = light_matrix * model * vec4(in_position, 1.0); }
"""

_SHADOW_FRAGMENT = """
#version 330
void main() {}
"""

_SKY_VERTEX = """
#version 330
in vec2 in_corner;
out float v_height;
void main() { v_height = in_corner.y; gl_Position = vec4(in_corner, 0.0, 1.0); }
"""

_SKY_FRAGMENT = """
#version 330
uniform vec3 horizon;
uniform vec3 zenith;
in float v_height;
out vec4 out_color;
void main() { out_color = vec4(mix(horizon, zenith, clamp(v_height * 0.5 + 0.5, 0.0, 1.0)), 1.0); }
"""

GROUND_HALF_SIZE = 200.0


def _linear(srgb: tuple[int, int, int]) -> tuple[float, ...]:
    return tuple((c / 255.0) ** 2.2 for c in srgb)


def _gl(matrix: np.ndarray) -> bytes:
    """Column-major float32 bytes, as GLSL expects."""
    return np.ascontiguousarray(matrix.T, dtype=np.float32).tobytes()


def _ortho(half: float, near: float, far: float) -> np.ndarray:
    return np.array([[1 / half, 0, 0, 0], [0, 1 / half, 0, 0],
                     [0, 0, -2 / (far - near), -(far + near) / (far - near)], [0, 0, 0, 1]])


class RasterRenderer(Renderer):
    """Shadow-mapped OpenGL rasterization on EGL; see the module docstring."""

    name = "raster"

    def __init__(self, samples: int = 4):
        self.samples = samples  # multisample anti-aliasing of the colour pass
        self._ctx = None
        self._targets: dict[tuple[int, int], tuple] = {}

    # -- GL state, made on first use ---------------------------------------------------------------------

    def _context(self):
        if self._ctx is not None:
            return self._ctx
        try:
            import moderngl
        except ImportError as e:
            raise MirdataError("the raster renderer needs moderngl: pip install moderngl") from e
        try:
            # The versioned sonames come with the runtime packages (libegl1, libgl1); the bare .so names only
            # with the -dev packages, which glcontext would otherwise look for.
            ctx = moderngl.create_standalone_context(backend="egl", require=330, libgl="libGL.so.1",
                                                     libegl="libEGL.so.1")
        except Exception as e:  # glcontext raises plain Exceptions when EGL or Mesa is missing
            raise MirdataError(f"no headless OpenGL 3.3 context ({e}); install Mesa's EGL driver: "
                               "apt-get install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri") from e
        self._moderngl = moderngl
        self._program = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self._id_program = ctx.program(vertex_shader=_ID_VERTEX, fragment_shader=_ID_FRAGMENT)
        self._shadow_program = ctx.program(vertex_shader=_SHADOW_VERTEX, fragment_shader=_SHADOW_FRAGMENT)
        self._sky_program = ctx.program(vertex_shader=_SKY_VERTEX, fragment_shader=_SKY_FRAGMENT)

        def arrays(data: np.ndarray) -> tuple:
            """The same triangles bound to each program: (shaded, data pass, shadow pass)."""
            vbo = ctx.buffer(data.tobytes())
            return (ctx.vertex_array(self._program, [(vbo, "3f 3f", "in_position", "in_normal")]),
                    ctx.vertex_array(self._id_program, [(vbo, "3f 12x", "in_position")]),
                    ctx.vertex_array(self._shadow_program, [(vbo, "3f 12x", "in_position")]))

        self._shapes = {shape: arrays(unit_mesh(shape).interleaved()) for shape in PRIMITIVES}
        h = GROUND_HALF_SIZE
        self._ground = arrays(np.array([[-h, -h, 0, 0, 0, 1], [h, -h, 0, 0, 0, 1], [h, h, 0, 0, 0, 1],
                                        [-h, -h, 0, 0, 0, 1], [h, h, 0, 0, 0, 1], [-h, h, 0, 0, 0, 1]], np.float32))
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], np.float32)
        self._sky = ctx.vertex_array(self._sky_program, [(ctx.buffer(corners.tobytes()), "2f", "in_corner")])
        self._shadow_map = ctx.depth_texture((SHADOW_SIZE, SHADOW_SIZE))
        self._shadow_map.compare_func = "<="
        self._shadow_map.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._shadow_fbo = ctx.framebuffer(depth_attachment=self._shadow_map)
        self._ctx = ctx
        return ctx

    def _target(self, size: tuple[int, int]) -> tuple:
        """(multisampled colour framebuffer, its resolve target, the one-sample data framebuffer) per size."""
        if size not in self._targets:
            ctx = self._ctx
            msaa = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4, samples=self.samples)],
                                   depth_attachment=ctx.depth_renderbuffer(size, samples=self.samples))
            resolved = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)])
            data = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 2, dtype="f4")],
                                   depth_attachment=ctx.depth_renderbuffer(size))
            self._targets[size] = (msaa, resolved, data)
        return self._targets[size]

    # -- rendering -----------------------------------------------------------------------------------------

    def render(self, scene: Scene, camera: Camera) -> RenderResult:
        ctx = self._context()
        mgl = self._moderngl
        parts = [(obj.id, *part) for obj in scene.objects for part in obj.parts()]
        light_matrix = self._light_matrix(scene)
        view, projection = _gl(camera.view_matrix()), _gl(camera.projection_matrix())

        # Pass 1: the shadow map.
        self._shadow_fbo.use()
        self._shadow_fbo.clear(depth=1.0)
        ctx.enable(mgl.DEPTH_TEST)
        ctx.disable(mgl.CULL_FACE)
        self._shadow_program["light_matrix"].write(_gl(light_matrix))
        for _, shape, model, _, _ in parts:
            self._shadow_program["model"].write(_gl(model))
            self._shapes[shape][2].render()

        # Pass 2: sky, ground and objects, shaded, multisampled.
        size = (camera.width, camera.height)
        msaa, resolved, data = self._target(size)
        msaa.use()
        msaa.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        ctx.disable(mgl.DEPTH_TEST)
        sky = np.array(scene.sky_colour) / 255.0
        self._sky_program["horizon"].value = tuple(sky)
        self._sky_program["zenith"].value = tuple(sky * np.array([0.72, 0.82, 0.95]))
        self._sky.render()
        ctx.enable(mgl.DEPTH_TEST | mgl.CULL_FACE)
        prog = self._program
        light = scene.light
        prog["view"].write(view)
        prog["projection"].write(projection)
        prog["light_matrix"].write(_gl(light_matrix))
        prog["sun_direction"].value = tuple(light.unit_direction())
        prog["sun_color"].value = light.sun
        prog["sky_light"].value = light.sky
        prog["ground_light"].value = light.ground_bounce
        prog["eye_position"].value = camera.position
        prog["shadow_texel"].value = 1.0 / SHADOW_SIZE
        prog["shadow_map"].value = 0
        self._shadow_map.use(location=0)
        prog["paving"].value = 1.0
        self._shade(np.eye(4), scene.ground_colour, "rubber", self._ground[0])
        prog["paving"].value = 0.0
        for _, shape, model, colour, material in parts:
            self._shade(model, colour, material, self._shapes[shape][0])
        ctx.copy_framebuffer(resolved, msaa)

        # Pass 3: eye depth and object id, one sample per pixel centre.
        data.use()
        data.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ids = self._id_program
        ids["view"].write(view)
        ids["projection"].write(projection)
        ids["model"].write(_gl(np.eye(4)))
        ids["object_id"].value = 0.0
        self._ground[1].render()
        for oid, shape, model, _, _ in parts:
            ids["model"].write(_gl(model))
            ids["object_id"].value = float(oid)
            self._shapes[shape][1].render()

        w, h = size
        color = np.frombuffer(resolved.read(components=3), np.uint8).reshape(h, w, 3)[::-1]
        aux = np.frombuffer(data.read(components=2, dtype="f4"), np.float32).reshape(h, w, 2)[::-1]
        depth = np.where(aux[..., 0] > 0, aux[..., 0], np.inf).astype(np.float32)
        instance = np.rint(aux[..., 1]).astype(np.int32)
        return RenderResult(np.ascontiguousarray(color), np.ascontiguousarray(depth), np.ascontiguousarray(instance))

    def _shade(self, model: np.ndarray, colour: tuple[int, int, int], material: str, vao) -> None:
        prog = self._program
        prog["model"].write(_gl(model))
        prog["normal_matrix"].write(_gl(np.linalg.inv(model[:3, :3]).T))
        prog["base_color"].value = _linear(colour)
        prog["specular"].value, prog["shininess"].value = MATERIAL_SPECULAR[material]
        vao.render()

    @staticmethod
    def _light_matrix(scene: Scene) -> np.ndarray:
        """Orthographic view-projection of the sun covering every object (and the shadows they cast)."""
        centre = scene.centre()
        tallest = max(o.size[2] for o in scene.objects)
        half = scene.radius() + tallest
        sun = Camera(tuple((centre + scene.light.unit_direction() * 100.0).tolist()), tuple(centre.tolist()), 1, 1)
        return _ortho(half, 100.0 - half - tallest, 100.0 + half + tallest) @ sun.view_matrix()

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.release()
            self._ctx = None
            self._targets.clear()
